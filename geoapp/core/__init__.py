"""The application core: what every door (pages, the JSON API, the CLI, Open311) calls.

A door parses its input, makes an Actor (geoapp/domain/audit.Actor: who, in which role, from which
client address, in which request), and calls a core function. The core function checks the actor's
capability against one table (permissions.MAY), does the work in one transaction through the domain
modules, writes the audit row in that same transaction, and returns domain results; the door
renders them. Who may *see* a report stays geoapp/domain/visibility.py.
"""
