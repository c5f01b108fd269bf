# A tiny WSGI app, run by an unmodified gunicorn on the socket hotproxy hands it as fd 3:
#   npx hotproxy --listen 8888 -- gunicorn --bind fd://3 --workers 2 --chdir examples/python-gunicorn app:app
# `fd://3` names the fd, so hotproxy leaves out LISTEN_FDS (gunicorn would open fd 3 twice).
# Without --bind, gunicorn finds the same socket through LISTEN_FDS by itself.
import os


def app(environ, start_response):
    gen = os.environ.get("SERVER_STARTER_GENERATION", "-")
    body = f"hello from gunicorn, generation {gen}, pid {os.getpid()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
