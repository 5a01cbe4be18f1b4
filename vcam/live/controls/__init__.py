"""What a user changes while ``kdcam start`` runs, and every way to change it.

``state`` (the live settings), ``keys`` (terminal keys), the ``kdcam ctl`` socket
(``protocol``: requests and their checks; ``sockets``: where the socket lives;
``socket_server``: the server; ``client``: ``kdcam ctl``'s side), ``preview`` (the
before/after window) and ``split_view``.
"""
