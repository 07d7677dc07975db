"""The ids the tests use, each defined once: the demo scenario's tenants and applications
(emulator/scenarios/demo.yaml, which `make run` serves too) and Microsoft's own.

Strings, as Graph, Entra and the environment give them; ``uuid.UUID(CONTOSO)`` where a
model's UUID field is compared.
"""

# -- tenants --------------------------------------------------------------------------------
# The cast's tenants (tests/conftest.py): alice, bob, erin and oscar sign in from Contoso,
# charlie from Fabrikam. Contoso is the demo's operator tenant and may revoke (the portal
# holds both write rights there); Fabrikam is read-only.
CONTOSO = "1e1a0801-7f55-46e2-9fb2-3b09766f2844"
FABRIKAM = "b60562d0-4422-42c9-a0bc-08e96ee0f689"
# Northwind is in the emulator but not onboarded: nina, its Global Administrator, connects it.
NORTHWIND = "9f3e40bb-3dc9-471b-bf34-13d1dc7ea28b"
# A tenant Microsoft publishes its first-party applications from (tenants.models).
MICROSOFT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"

# -- resources ------------------------------------------------------------------------------
GRAPH = "00000003-0000-0000-c000-000000000000"  # Microsoft Graph's appId

# -- the demo's applications (appIds) -------------------------------------------------------
PORTAL_APP = "0d3c2b1a-9f8e-4d7c-8b6a-5f4e3d2c1b0a"  # the Permission Portal itself
CONNECT_247 = "8708fc71-9f71-4ad5-8445-a0746692feeb"
ROOMS = "3c1a9d6e-5b2f-4e8a-9c7d-1f0e2b3a4c5d"  # Teams Rooms monitoring platform
ASKCODY = "6f4e2a1b-8c3d-4e5f-a6b7-c8d9e0f1a2b3"
LOOKOUT = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"  # Lookout MES Console
LEGACY = "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e"  # Legacy Reporting Tool, by Contoso IT

# -- Graph's app role ids (the same in every tenant) -----------------------------------------
DEVICE_READ_ALL = "7438b122-aefc-4978-80ed-43db9fcc7715"
MAIL_READ = "810c84a8-4a9e-49e6-bf7d-12d183f40d01"
WOODGROVE = "5a7d3e2b-9c41-4f8e-b6a0-1d2c3b4a5e6f"  # realistic data: managed identities, an SSO app, odd names
