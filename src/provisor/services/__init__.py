"""Services: the rules of devices, configs, params and operations, over the store."""
