"""The paper's learned search: features, the ResNet encoder, fingerprint sequences, vector stores, k-NN + rerank."""
