"""The store: Shopify-compatible webhooks in, store API out, and the commerce pipelines."""
