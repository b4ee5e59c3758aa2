"""Model distribution: keys and encryption, the hardware fingerprint, the Azaion API and CDN
clients, and the model stores (platform and embedded local) built on them.

Modules: `security` (hash, AES-256-CBC, key derivation, key files), `hardware` (the fingerprint),
`api` (the REST API client), `cdn` (the S3-compatible CDN client), `versions` (version records
and what both stores share), `local` and `remote` (the two stores), `models` (the store
interface: open a store, publish, fetch, list, roll back).
"""
