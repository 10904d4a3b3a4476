"""wazo-provd compatibility: wazo-format plugin repositories and wazo plugins run in workers.

``index`` reads a wazo plugin server (``plugins.db``); ``worker`` starts and supervises one
process per installed wazo plugin; ``plugin`` makes such a worker look like a native plugin to
the pipeline. The plugin API the workers provide lives in ``runtime/``, outside provisor's
import path: the server never imports third-party plugin code.
"""
