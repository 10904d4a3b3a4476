"""provisor's clean-room stand-in for the plugin API that wazo-format plugins import.

Loaded only inside a wazo plugin worker process (provisor.wazo.worker starts it); the server
process never imports it. Written from the documented behaviour of wazo-provd's plugin API and
from what published plugins call, not from wazo-provd's code.
"""
