"""Images the manifests name, and local stand-ins for machines that cannot pull them."""
