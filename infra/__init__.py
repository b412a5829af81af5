"""The Pulumi program that deploys a Sovereign Map testnet on Docker or Kubernetes.

``__main__`` is the entry point Pulumi runs; ``program.build`` creates the resources;
``stacks`` validates the stack configuration; ``components`` holds the building blocks.
"""
