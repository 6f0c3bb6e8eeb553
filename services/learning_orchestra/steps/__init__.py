"""One package per step service; each declares `STEP_TYPES` and/or `ROUTERS` and exposes `app`."""
