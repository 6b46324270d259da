"""Networks (``nets``: nn.Modules only), model folders and the device they run on."""
