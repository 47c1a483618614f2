"""Transports: own sockets, reconnects, pings and watchdogs; know nothing of venue messages."""
