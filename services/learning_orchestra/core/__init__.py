"""The machinery every step service shares: model, store, artifacts, jobs, references."""
