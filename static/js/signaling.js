// A small client for the signaling socket (protocol v1): connect, send, dispatch by type,
// reconnect with back-off while showing the page's connection banner.

const PING_EVERY_MS = 25000;

export class Signaling {
  constructor(path) {
    this.url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`;
    this.handlers = new Map();
    this.hello = null;
    this.socket = null;
    this.retries = 0;
    this.nextId = 1;
    this.closing = false;
    this.banner = document.querySelector("[data-connection-banner]");
    this._ready = null;
  }

  /** Register a handler for a server message type ("*" gets every message). */
  on(type, handler) {
    if (!this.handlers.has(type)) this.handlers.set(type, []);
    this.handlers.get(type).push(handler);
    return this;
  }

  /** Open the socket if needed; resolves with the server's `hello` message. */
  connect() {
    if (this._ready) return this._ready;
    this.closing = false;
    this._ready = new Promise((resolve, reject) => {
      const socket = new WebSocket(this.url);
      this.socket = socket;
      let greeted = false;
      socket.addEventListener("message", (event) => {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch {
          return;
        }
        if (message.type === "hello") {
          greeted = true;
          this.hello = message;
          this.retries = 0;
          this._showBanner(false);
          resolve(message);
        }
        this._dispatch(message);
      });
      socket.addEventListener("open", () => {
        this.pinger = setInterval(() => this.send("ping"), PING_EVERY_MS);
      });
      socket.addEventListener("close", (event) => {
        clearInterval(this.pinger);
        this._ready = null;
        if (!greeted) reject(new Error(`socket closed (${event.code})`));
        if (this.closing || event.code === 4403) {
          this._dispatch({ type: "socket.closed", code: event.code });
          return;
        }
        this._showBanner(true);
        this._dispatch({ type: "socket.lost", code: event.code });
        const delay = Math.min(10000, 500 * 2 ** this.retries++);
        setTimeout(() => {
          this.connect()
            .then(() => this._dispatch({ type: "socket.restored" }))
            .catch(() => {});
        }, delay);
      });
    });
    this._ready.catch(() => {});
    return this._ready;
  }

  get open() {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  /** Send a protocol message; returns its `id` (echoed as `ref` in errors). */
  send(type, fields = {}) {
    const id = String(this.nextId++);
    if (this.open) this.socket.send(JSON.stringify({ v: 1, type, id, ...fields }));
    return id;
  }

  close() {
    this.closing = true;
    this.socket?.close();
  }

  _dispatch(message) {
    for (const key of [message.type, "*"]) {
      for (const handler of this.handlers.get(key) || []) {
        try {
          handler(message);
        } catch (error) {
          console.error("signaling handler failed", message.type, error);
        }
      }
    }
  }

  _showBanner(show) {
    if (this.banner) this.banner.hidden = !show;
  }
}
