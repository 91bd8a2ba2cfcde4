"""Small programs for tests/lingering_real_servers.bats, built only from Python's standard library.

  answer_post DIR        python's http.server serving DIR, which answers a POST 50 ms later as it
                         answers a GET (with the file) and never reads the upload; the kernel picks
                         the port, the first line of output says which ("Serving HTTP on 127.0.0.1
                         port N ...").
  forking_server BYTES   socketserver.ForkingTCPServer: each child reads one line and answers BYTES
                         zero bytes; prints "port N" first.
  upload URL FILE        POSTs FILE to URL as urllib does (the whole body, then the answer); prints
                         "status CODE BYTES" or "error NAME: MESSAGE".
  get PORT PATH [body N | late_body N | pipelined]
                         asks an HTTP/1.0 server for PATH, with a body of N zero bytes it does not
                         expect (sent with the headers, or 200 ms after them), or twice on one
                         connection, the second request sent 20 ms after the first without waiting
                         for the answer (pipelining); reads what comes at about
                         6 MB/s through a 64 KB receive buffer, so that most of a large answer still
                         waits in the server's send queue when it closes; prints "got BYTES
                         end=eof|ECONNRESET|...".
  pool_answer            a server whose main thread accepts and hands each connection to a
                         ThreadPoolExecutor worker, which reads the request's headers, answers
                         with 1 MiB and closes without reading the body; prints "port N" first.
  stream [CERT KEY]      answers each HTTP request, one connection after the other, with an endless
                         body in 64 KB blocks until the client is gone; prints "port N" first, then
                         for each connection "sent BYTES end=ECONNRESET|EPIPE|...". With a
                         certificate and its key, over TLS (HTTPS).
  give_up PORT [BYTES]   asks the stream server at PORT for its endless answer, reads BYTES of it
                         (1000000; with less than 1024, one read of at most that much, once the
                         answer has been streaming for 200 ms, as aria2c's extra connections do) and
                         gives up as the JVM's Socket.close() and aria2c do: shutdown(SHUT_WR), then
                         close(); prints BYTES.
  epoll_reuse raw|libc   closes a socket registered in an epoll instance, accepts another one that
                         takes its number, and prints which events that instance then reports:
                         "events: none" or "events: fd=N mask=M ...". raw: the instance is made and
                         filled with the epoll_create1 and epoll_ctl system calls directly, out of
                         sight of an LD_PRELOAD library; libc: with select.epoll, through libc.
"""
import ctypes
import errno
import http.server
import os
import select
import socket
import socketserver
import ssl
import sys
import time
import urllib.error
import urllib.request


def answer_post(directory):
    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_POST(self):
            time.sleep(0.05)  # a moment's work first (a check, a lookup): the upload has begun by then
            self.do_GET()

        def log_message(self, *args):
            pass

    os.chdir(directory)
    sys.stdout.reconfigure(line_buffering=True)
    http.server.test(HandlerClass=Handler, port=0, bind="127.0.0.1")


def forking_server(size):
    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            self.rfile.readline()
            block = bytes(65536)
            left = size
            while left:
                self.wfile.write(block[:min(left, len(block))])
                left -= min(left, len(block))

    with socketserver.ForkingTCPServer(("127.0.0.1", 0), Handler) as server:
        print("port", server.server_address[1], flush=True)
        server.serve_forever()


def pool_answer():
    from concurrent.futures import ThreadPoolExecutor
    listener = socket.create_server(("127.0.0.1", 0))
    print("port", listener.getsockname()[1], flush=True)
    answer = b"HTTP/1.0 200 OK\r\nContent-Length: 1048576\r\n\r\n" + bytes(1048576)

    def handle(conn):
        request = b""
        while b"\r\n\r\n" not in request:
            data = conn.recv(4096)
            if not data:
                break
            request += data
        conn.sendall(answer)
        conn.close()

    with ThreadPoolExecutor(4) as pool:  # its threads come with the first submit, after an accept
        while True:
            pool.submit(handle, listener.accept()[0])


def stream(cert=None, key=None):
    listener = socket.create_server(("127.0.0.1", 0))
    print("port", listener.getsockname()[1], flush=True)
    block = bytes(65536)
    if cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
    while True:
        conn, _ = listener.accept()
        if cert:
            try:
                conn = tls.wrap_socket(conn, server_side=True)
            except OSError as e:
                print("handshake", e, flush=True)
                continue
        conn.recv(4096)
        sent = 0
        try:
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
            while True:
                sent += conn.send(block)
        except OSError as e:
            print("sent", sent, "end=" + errno.errorcode.get(e.errno, str(e.errno)), flush=True)
        conn.close()


def give_up(port, size="1000000"):
    size = int(size)
    c = socket.create_connection(("127.0.0.1", int(port)))
    c.sendall(b"GET / HTTP/1.0\r\n\r\n")
    got = 0
    if size < 1024:
        time.sleep(0.2)
        c.recv(size)
    else:
        while got < size:
            got += len(c.recv(min(65536, size - got)))
    c.shutdown(socket.SHUT_WR)
    c.close()
    print(size, flush=True)


def upload(url, path):
    with open(path, "rb") as f:
        body = f.read()
    request = urllib.request.Request(url, data=body)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            print("status", answer.status, len(answer.read()))
    except urllib.error.HTTPError as answer:
        print("status", answer.code, len(answer.read()))
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        print("error", type(reason).__name__ + ":", reason)


def get(port, path, extra=None, size="0"):
    request = f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n".encode()
    body = bytes(int(size)) if extra in ("body", "late_body") else b""
    request += f"Content-Length: {len(body)}\r\n\r\n".encode() if body else b"\r\n"
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # before connect: caps the window
        s.settimeout(10)
        s.connect(("127.0.0.1", int(port)))
        if extra == "late_body":
            s.sendall(request)
            time.sleep(0.2)  # the server has answered and closed by now
            s.sendall(body)
        else:
            s.sendall(request + body)
        if extra == "pipelined":
            time.sleep(0.02)
            s.sendall(request)
        got, end = 0, "eof"
        try:
            while chunk := s.recv(65536):
                got += len(chunk)
                time.sleep(0.01)  # a slow reader: the answer waits in the server's send queue
        except OSError as e:
            end = errno.errorcode.get(e.errno, str(e))
        print("got", got, "end=" + end)


# System call numbers: epoll_create1, epoll_ctl.
SYSCALLS = {"x86_64": (291, 233), "aarch64": (20, 21)}


def raw_epoll():
    """An epoll instance made and filled with system calls, past any LD_PRELOAD library: returns the
    instance (for poll) and a function that registers a descriptor in it."""
    machine = os.uname().machine
    if machine not in SYSCALLS:
        print("unsupported machine", machine)
        sys.exit(2)
    create1, ctl = SYSCALLS[machine]

    class Event(ctypes.Structure):
        _fields_ = [("events", ctypes.c_uint32), ("data", ctypes.c_uint64)]
        if machine == "x86_64":
            _pack_ = 1  # struct epoll_event is packed there

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    epfd = libc.syscall(ctypes.c_long(create1), ctypes.c_long(os.O_CLOEXEC))
    if epfd < 0:
        raise OSError(ctypes.get_errno(), "epoll_create1")

    def register(fd, events):
        event = Event(events, fd)
        add = 1  # EPOLL_CTL_ADD
        if libc.syscall(ctypes.c_long(ctl), ctypes.c_long(epfd), ctypes.c_long(add), ctypes.c_long(fd),
                        ctypes.byref(event)) != 0:
            raise OSError(ctypes.get_errno(), "epoll_ctl")

    return select.epoll.fromfd(epfd), register


def epoll_reuse(kind):
    if kind == "raw":
        ep, register = raw_epoll()
    else:
        ep = select.epoll()
        register = ep.register
    listener = socket.create_server(("127.0.0.1", 0))
    old_client = socket.create_connection(listener.getsockname())
    new_client = socket.create_connection(listener.getsockname())
    old, _ = listener.accept()
    number = old.fileno()
    register(number, select.EPOLLIN | select.EPOLLOUT)
    old_client.sendall(b"request")  # left unread, and an answer in flight: this close lingers
    old.sendall(b"answer")
    time.sleep(0.05)
    old.close()  # the old client stays connected and silent: a lingering close lasts
    new, _ = listener.accept()  # takes the old number; not registered: any event for it is the old socket's
    print("old fd", number, "new fd", new.fileno())
    events = ep.poll(0.2)
    if events:
        print("events:", " ".join(f"fd={fd} mask={mask:#x}" for fd, mask in events))
    else:
        print("events: none")
    for s in (old_client, new_client, new, listener):
        s.close()


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "answer_post":
        answer_post(args[0])
    elif command == "forking_server":
        forking_server(int(args[0]))
    elif command == "upload":
        upload(args[0], args[1])
    elif command == "get":
        get(*args)
    elif command == "stream":
        stream(*args)
    elif command == "pool_answer":
        pool_answer()
    elif command == "give_up":
        give_up(*args)
    elif command == "epoll_reuse":
        epoll_reuse(args[0])
    else:
        sys.exit(f"unknown command {command}")
