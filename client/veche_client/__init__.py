"""The resident's and trustee's client: a Python SDK (sdk.py), a local wallet of encrypted keys
(wallet.py) and the `veche` command line (cli.py)."""
