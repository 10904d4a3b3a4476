# TestWazo common file
server_ip = {{ ip }}
