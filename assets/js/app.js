// Our client code. The pages load phoenix.min.js and phoenix_live_view.min.js first (the npm
// packages' IIFE bundles, which define the globals `Phoenix` and `LiveView`), then this file,
// so there is nothing to bundle.
(function () {
  "use strict";

  // How close to the bottom (px) still counts as "reading the newest messages".
  const STICK_TO_BOTTOM_PX = 80;
  // How close to the top (px) asks the server for older messages.
  const LOAD_MORE_PX = 40;
  // A scroll event fires per frame; checking a few times a second is enough.
  const SCROLL_THROTTLE_MS = 100;

  const Hooks = {};

  // Enter sends the form; Shift+Enter keeps the default (a newline in a textarea).
  // IME composition is left alone so confirming a candidate does not send.
  Hooks.EnterSubmit = {
    mounted() {
      this.onKeydown = (e) => {
        if (e.key !== "Enter" || e.shiftKey || e.isComposing) return;
        const form = this.el.form;
        if (!form) return;
        e.preventDefault();
        if (typeof form.requestSubmit === "function") form.requestSubmit();
      };
      this.el.addEventListener("keydown", this.onKeydown);
    },
    destroyed() {
      this.el.removeEventListener("keydown", this.onKeydown);
    },
  };

  // A message list: follows new messages while the reader is at the bottom, keeps the reader's
  // place when older messages are prepended, and asks for older ones near the top.
  Hooks.ScrollBottom = {
    mounted() {
      this.pending = false;
      this.lastCheck = 0;
      this.scrollToBottom();
      this.onScroll = () => {
        const now = Date.now();
        if (now - this.lastCheck < SCROLL_THROTTLE_MS) return;
        this.lastCheck = now;
        this.maybeLoadMore();
      };
      this.el.addEventListener("scroll", this.onScroll, { passive: true });
    },
    beforeUpdate() {
      const el = this.el;
      this.wasAtBottom =
        el.scrollHeight - el.scrollTop - el.clientHeight <= STICK_TO_BOTTOM_PX;
      this.oldHeight = el.scrollHeight;
      this.oldTop = el.scrollTop;
    },
    updated() {
      const el = this.el;
      if (this.wasAtBottom) {
        this.scrollToBottom();
      } else if (
        typeof this.oldHeight === "number" &&
        el.scrollHeight > this.oldHeight &&
        this.oldTop < STICK_TO_BOTTOM_PX
      ) {
        // Content arrived above the reader: move by as much as it added so nothing jumps.
        el.scrollTop = this.oldTop + (el.scrollHeight - this.oldHeight);
      }
      this.pending = false;
    },
    destroyed() {
      this.el.removeEventListener("scroll", this.onScroll);
    },
    scrollToBottom() {
      this.el.scrollTop = this.el.scrollHeight;
    },
    maybeLoadMore() {
      if (this.pending || this.el.dataset.hasMore !== "true") return;
      if (this.el.scrollTop >= LOAD_MORE_PX) return;
      this.pending = true;
      this.pushEvent("load_more", {});
    },
  };

  // Shows a server timestamp (data-ts, ms since the epoch) in the reader's own time zone and
  // locale, which the server does not know.
  Hooks.LocalTime = {
    mounted() {
      this.render();
    },
    updated() {
      this.render();
    },
    render() {
      const ms = Number(this.el.dataset.ts);
      if (!Number.isFinite(ms)) return;
      const when = new Date(ms);
      const today = new Date();
      const sameDay = when.toDateString() === today.toDateString();
      const time = { hour: "2-digit", minute: "2-digit" };
      this.el.textContent = sameDay
        ? when.toLocaleTimeString(undefined, time)
        : when.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
      this.el.title = when.toLocaleString();
    },
  };

  // The server's push_event("focus", {id}) moves the focus, e.g. back to the composer.
  window.addEventListener("phx:focus", (e) => {
    const id = e.detail && e.detail.id;
    if (typeof id === "string") document.getElementById(id)?.focus();
  });

  // The server's push_event("clear-input", {id}) empties a composer after its message was
  // accepted: a patch never overwrites the focused field's value, so the server cannot.
  window.addEventListener("phx:clear-input", (e) => {
    const id = e.detail && e.detail.id;
    const el = typeof id === "string" ? document.getElementById(id) : null;
    if (el && "value" in el) el.value = "";
  });

  function connect() {
    if (!window.Phoenix || !window.LiveView) return;
    const meta = document.querySelector("meta[name='csrf-token']");
    const csrf = meta ? meta.getAttribute("content") : null;
    const liveSocket = new LiveView.LiveSocket("/live", Phoenix.Socket, {
      params: { _csrf_token: csrf },
      hooks: Hooks,
    });
    liveSocket.connect();
    window.liveSocket = liveSocket;
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", connect);
  } else {
    connect();
  }
})();
