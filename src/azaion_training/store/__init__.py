"""Model distribution: keys and encryption, the hardware fingerprint, the Azaion API and CDN
clients, and the model stores (platform and embedded local) built on them.

Modules: `security` (hash, AES-256-CBC, key derivation), `hardware` (the fingerprint), `api`
(the REST API client), `cdn` (the S3-compatible CDN client), `models` (publish and fetch split,
encrypted models).
"""
