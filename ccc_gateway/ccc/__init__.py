"""The CCC OpenAPI forwarder: the /aliyun/ccc/api view and the POP client."""
