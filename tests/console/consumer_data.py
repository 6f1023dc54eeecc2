"""Data the consumer tests share: a server's two tools (at a backend that is never called)."""

TOOLS_YAML = """\
tools:
  - name: listPets
    description: List pets.
    requestTemplate: {url: "http://127.0.0.1:9/pets", method: GET}
  - name: getPet
    description: One pet.
    requestTemplate: {url: "http://127.0.0.1:9/pets/1", method: GET}
"""
