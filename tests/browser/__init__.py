"""Browser tests: headless Chromium (Playwright) against the real ASGI server (daphne) in a subprocess.

They skip, saying why, when Chromium or the playwright package is missing (``make browser`` installs
Chromium where it can).
"""
