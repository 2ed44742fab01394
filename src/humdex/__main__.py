from humdex.cli import main

raise SystemExit(main())
