// The try-out chat page. Bot text is drawn from plain text and Telegram entities with DOM
// calls (text nodes and a fixed set of elements), never through innerHTML.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const MAX_UPLOAD = 10 * 1024 * 1024;

  const state = {
    world: null,
    view: null,
    speaker: null,
    messages: new Map(),
    since: 0,
    loaded: false,
    generation: 0,
    abort: null,
    replyTo: null,
    typingTimer: null,
    pendingFileKind: null,
  };

  // ---------------------------------------------------------------------------------------
  // Small helpers

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function call(path, body, signal) {
    const options = { signal };
    if (body !== undefined) {
      options.method = "POST";
      options.headers = { "Content-Type": "application/json" };
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    let data;
    try {
      data = await response.json();
    } catch {
      throw new Error(`HTTP ${response.status}`);
    }
    if (!data.ok) throw new Error(data.error || `HTTP ${response.status}`);
    return data;
  }

  let toastTimer = null;
  function toast(text, isError) {
    const box = $("toast");
    box.textContent = text;
    box.classList.toggle("error", Boolean(isError));
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { box.hidden = true; }, 3500);
  }

  function setStatus(text, typing) {
    const status = $("status");
    status.textContent = text;
    status.classList.toggle("typing", Boolean(typing));
  }

  function defaultStatus() {
    if (!state.view) return "本地试用 · local try-out";
    return state.view.group ? `${state.view.title}` : "本地试用 · local try-out";
  }

  // ---------------------------------------------------------------------------------------
  // Telegram entities to DOM

  const SAFE_PROTOCOLS = new Set(["http:", "https:", "tg:", "mailto:"]);

  function safeHref(raw) {
    let candidate = raw.trim();
    if (!/^[a-z][a-z0-9+.-]*:/i.test(candidate)) candidate = `http://${candidate}`;
    try {
      const url = new URL(candidate);
      return SAFE_PROTOCOLS.has(url.protocol) ? url.href : null;
    } catch {
      return null;
    }
  }

  function link(href) {
    const safe = safeHref(href);
    if (!safe) return el("span");
    const a = el("a");
    a.href = safe;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    return a;
  }

  function elementFor(entity, text) {
    const piece = text.slice(entity.offset, entity.offset + entity.length);
    switch (entity.type) {
      case "bold": return el("b");
      case "italic": return el("i");
      case "underline": return el("u");
      case "strikethrough": return el("s");
      case "code": return el("code");
      case "pre": return el("pre");
      case "blockquote":
      case "expandable_blockquote": return el("blockquote");
      case "spoiler": {
        const span = el("span", "spoiler");
        span.title = "点击显示 Tap to reveal";
        span.addEventListener("click", () => span.classList.add("shown"));
        return span;
      }
      case "text_link": return link(entity.url || "");
      case "url": return link(piece);
      case "email": return link(`mailto:${piece}`);
      default: return el("span");
    }
  }

  // Entities count UTF-16 code units, which is how JavaScript strings are indexed.
  function build(parent, text, entities, start, end) {
    let position = start;
    let index = 0;
    while (index < entities.length) {
      const entity = entities[index];
      const from = Math.max(entity.offset, position);
      const to = Math.min(entity.offset + entity.length, end);
      let next = index + 1;
      while (next < entities.length && entities[next].offset < to) next += 1;
      if (from < to) {
        if (from > position) parent.append(text.slice(position, from));
        const element = elementFor(entity, text);
        build(element, text, entities.slice(index + 1, next), from, to);
        parent.append(element);
        position = to;
      }
      index = next;
    }
    if (position < end) parent.append(text.slice(position, end));
  }

  function renderText(text, entities) {
    const box = el("div", "text");
    const sorted = (entities || [])
      .filter((e) => Number.isInteger(e.offset) && Number.isInteger(e.length) && e.length > 0)
      .slice()
      .sort((a, b) => a.offset - b.offset || b.length - a.length);
    build(box, text, sorted, 0, text.length);
    return box;
  }

  // ---------------------------------------------------------------------------------------
  // Messages

  function isMine(message) {
    return state.speaker !== null && message.from && message.from.id === state.speaker.id;
  }

  // Times are shown in the deployment's time zone (the bot's), whatever the browser's is.
  function clock(seconds) {
    const date = new Date(seconds * 1000);
    const options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    const zone = state.world && state.world.time_zone;
    try {
      return date.toLocaleTimeString("zh-CN", zone ? { ...options, timeZone: zone } : options);
    } catch (error) {
      return date.toLocaleTimeString("zh-CN", options);
    }
  }

  function renderButtons(message) {
    const box = el("div", "buttons");
    for (const row of message.buttons) {
      const line = el("div", "row");
      for (const button of row) {
        if (button.url !== undefined) {
          const a = link(button.url);
          a.textContent = `${button.text} ↗`;
          line.append(a);
          continue;
        }
        const node = el("button", "", button.text);
        node.type = "button";
        if (button.callback_data === undefined) {
          node.disabled = true;
          node.title = "试用页不支持此按钮 Not supported here";
        } else {
          node.addEventListener("click", () => press(message, button, node));
        }
        line.append(node);
      }
      box.append(line);
    }
    return box;
  }

  function renderMessage(message) {
    const mine = isMine(message);
    const wrapper = el("div", `msg${mine ? " mine" : ""}${message.service ? " service" : ""}`);
    wrapper.dataset.id = String(message.id);
    const bubble = el("div", "bubble");
    wrapper.append(bubble);
    if (message.service) {
      const verb = message.service === "new_chat_members" ? "加入了群组 joined" : "离开了群组 left";
      bubble.textContent = `${message.from.name} ${verb}`;
      return wrapper;
    }
    if (!mine && state.view.group) {
      bubble.append(el("div", "sender", message.from.name));
    }
    if (message.forwarded_from) {
      bubble.append(el("div", "forward", `转发自 Forwarded from ${message.forwarded_from}`));
    }
    if (message.reply_to) {
      const quote = el("div", "quote");
      quote.append(el("b", "", message.reply_to.from), document.createElement("br"));
      quote.append(message.reply_to.text || "…");
      quote.addEventListener("click", () => scrollToMessage(message.reply_to.id));
      bubble.append(quote);
    }
    if (message.photo && message.photo.startsWith("/_tryout/files/")) {
      const img = el("img", "photo");
      img.src = message.photo;
      img.alt = "照片 photo";
      bubble.append(img);
    }
    if (message.sticker) bubble.append(el("div", "sticker", message.sticker));
    if (message.location) {
      const { latitude, longitude } = message.location;
      bubble.append(el("div", "", `📍 ${latitude.toFixed(5)}, ${longitude.toFixed(5)}`));
    }
    if (message.contact) {
      const c = message.contact;
      bubble.append(el("div", "", `📞 ${c.first_name} ${c.last_name || ""} ${c.phone_number}`));
    }
    if (message.voice) bubble.append(el("div", "", `🎤 语音 voice · ${message.voice.duration}s`));
    if (message.document && message.document.url.startsWith("/_tryout/files/")) {
      const a = el("a", "", `📄 ${message.document.name}`);
      a.href = message.document.url;
      a.download = message.document.name;
      const line = el("div");
      line.append(a);
      bubble.append(line);
    }
    if (message.text) bubble.append(renderText(message.text, message.entities));
    if (message.buttons && message.buttons.length) bubble.append(renderButtons(message));
    const meta = el("div", "meta", `${message.edited ? "已编辑 edited · " : ""}${clock(message.date)}`);
    const reply = el("button", "", "↩ 回复 Reply");
    reply.type = "button";
    reply.addEventListener("click", () => setReply(message));
    meta.append(reply);
    bubble.append(meta);
    return wrapper;
  }

  function scrollToMessage(id) {
    const node = $("log").querySelector(`[data-id="${Number(id)}"]`);
    if (node) node.scrollIntoView({ behavior: "smooth", block: "center" });
  }

  function applyChanges(data) {
    const log = $("log");
    const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
    for (const message of data.messages) {
      const existing = log.querySelector(`[data-id="${Number(message.id)}"]`);
      if (message.deleted) {
        state.messages.delete(message.id);
        if (existing) existing.remove();
        continue;
      }
      state.messages.set(message.id, message);
      const node = renderMessage(message);
      if (existing) {
        existing.replaceWith(node);
        continue;
      }
      let before = null;
      for (const other of log.querySelectorAll(".msg")) {
        if (Number(other.dataset.id) > message.id) { before = other; break; }
      }
      log.insertBefore(node, before);
    }
    $("empty").hidden = state.messages.size > 0;
    if (nearBottom || data.messages.some(isMine)) log.scrollTop = log.scrollHeight;
    renderKeyboard(data.keyboard, data.placeholder);
    renderCommands(data.commands);
    showTyping(data.typing);
  }

  function showTyping(seconds) {
    clearTimeout(state.typingTimer);
    if (seconds > 0) {
      setStatus("正在输入… typing…", true);
      state.typingTimer = setTimeout(() => setStatus(defaultStatus()), seconds * 1000);
    } else {
      setStatus(defaultStatus());
    }
  }

  function renderKeyboard(rows, placeholder) {
    const box = $("keyboard");
    box.replaceChildren();
    box.hidden = !rows || rows.length === 0;
    $("text").placeholder = placeholder || "输入消息 Message";
    if (box.hidden) return;
    for (const row of rows) {
      const line = el("div", "row");
      for (const label of row) {
        const button = el("button", "", label);
        button.type = "button";
        button.addEventListener("click", () => send({ kind: "text", text: label }));
        line.append(button);
      }
      box.append(line);
    }
  }

  function renderCommands(commands) {
    const box = $("commands");
    box.replaceChildren();
    $("slash").hidden = !commands || commands.length === 0;
    for (const { command, description } of commands || []) {
      const button = el("button", "", `/${command}`);
      button.type = "button";
      button.append(el("span", "desc", description));
      button.addEventListener("click", () => {
        box.hidden = true;
        send({ kind: "text", text: `/${command}` });
      });
      box.append(button);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Talking to the server

  async function pollLoop(generation) {
    while (generation === state.generation) {
      try {
        // The first request answers at once with the history; later ones wait for changes.
        const wait = state.loaded ? 20 : 0;
        const path = `/_tryout/messages?chat_id=${state.view.chat_id}&since=${state.since}&wait=${wait}`;
        const data = await call(path, undefined, state.abort.signal);
        if (generation !== state.generation) return;
        state.since = data.version;
        state.loaded = true;
        applyChanges(data);
      } catch (error) {
        if (generation !== state.generation) return;
        setStatus("连接中断，重试中… Reconnecting…");
        await sleep(1500);
      }
    }
  }

  async function send(body) {
    if (!state.view || !state.speaker) return;
    const payload = { ...body, chat_id: state.view.chat_id, user_id: state.speaker.id };
    if (state.replyTo) payload.reply_to = state.replyTo.id;
    try {
      await call("/_tryout/send", payload);
      setReply(null);
      return true;
    } catch (error) {
      toast(`发送失败 Not sent: ${error.message}`, true);
      return false;
    }
  }

  async function press(message, button, node) {
    node.disabled = true;
    try {
      const data = await call("/_tryout/press", {
        chat_id: state.view.chat_id,
        user_id: state.speaker.id,
        message_id: message.id,
        callback_data: button.callback_data,
      });
      const answer = data.answer;
      if (answer && answer.text) {
        if (answer.show_alert) window.alert(answer.text);
        else toast(answer.text);
      } else if (!answer) {
        toast("机器人没有回应按钮 The bot did not answer the button", true);
      }
    } catch (error) {
      toast(error.message, true);
    } finally {
      node.disabled = false;
    }
  }

  function setReply(message) {
    state.replyTo = message;
    $("reply-bar").hidden = !message;
    $("reply-text").textContent = message
      ? `${message.from.name}: ${message.text || message.kind}`.slice(0, 100)
      : "";
    if (message) $("text").focus();
  }

  // ---------------------------------------------------------------------------------------
  // Views (personas)

  function selectView(key, speakerId) {
    const view = state.world.views.find((v) => v.key === key) || state.world.views[0];
    state.view = view;
    state.speaker = view.speakers.find((s) => String(s.id) === String(speakerId)) || view.speakers[0];
    state.generation += 1;
    if (state.abort) state.abort.abort();
    state.abort = new AbortController();
    state.messages.clear();
    state.since = 0;
    state.loaded = false;
    setReply(null);
    for (const node of $("log").querySelectorAll(".msg")) node.remove();
    $("empty").hidden = false;
    for (const button of $("views").children) {
      button.setAttribute("aria-pressed", String(button.dataset.key === view.key));
    }
    const select = $("speaker");
    select.replaceChildren();
    for (const speaker of view.speakers) {
      const option = el("option", "", speaker.name);
      option.value = String(speaker.id);
      option.selected = speaker.id === state.speaker.id;
      select.append(option);
    }
    $("speaker-box").hidden = view.speakers.length < 2;
    history.replaceState(null, "", `#view=${encodeURIComponent(view.key)}&as=${state.speaker.id}`);
    setStatus(defaultStatus());
    pollLoop(state.generation);
  }

  function renderViews() {
    const nav = $("views");
    nav.replaceChildren();
    for (const view of state.world.views) {
      const button = el("button", "", view.label);
      button.type = "button";
      button.dataset.key = view.key;
      button.addEventListener("click", () => selectView(view.key));
      nav.append(button);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Composer

  function readFile(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
  }

  function chooseFile(kind) {
    state.pendingFileKind = kind;
    const input = $("file");
    input.accept = kind === "photo" ? "image/*" : "";
    input.value = "";
    input.click();
  }

  async function onFileChosen() {
    const file = $("file").files[0];
    const kind = state.pendingFileKind;
    if (!file || !kind) return;
    if (file.size > MAX_UPLOAD) {
      toast("文件不能超过 10 MB · Files are limited to 10 MB", true);
      return;
    }
    const data = await readFile(file);
    const caption = $("text").value.trim();
    const sent = await send({
      kind,
      caption: caption || undefined,
      file: { name: file.name, type: file.type, data },
    });
    if (sent && caption) $("text").value = "";
  }

  function onAttach(kind) {
    $("attach-menu").hidden = true;
    $("attach").setAttribute("aria-expanded", "false");
    if (kind === "photo-file") return chooseFile("photo");
    if (kind === "document") return chooseFile("document");
    if (kind === "sticker") return send({ kind: "sticker", emoji: "👍" });
    return send({ kind });
  }

  function autosize() {
    const text = $("text");
    text.style.height = "auto";
    text.style.height = `${Math.min(text.scrollHeight, 140)}px`;
  }

  async function submit(event) {
    event.preventDefault();
    const text = $("text").value;
    if (!text.trim()) return;
    const sent = await send({ kind: "text", text });
    if (sent) {
      $("text").value = "";
      autosize();
    }
  }

  function wireComposer() {
    $("form").addEventListener("submit", submit);
    $("text").addEventListener("input", autosize);
    $("text").addEventListener("keydown", (event) => {
      // Enter sends; Shift+Enter is a new line; Enter while an IME composes is the IME's.
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        $("form").requestSubmit();
      }
    });
    $("attach").addEventListener("click", () => {
      const menu = $("attach-menu");
      menu.hidden = !menu.hidden;
      $("attach").setAttribute("aria-expanded", String(!menu.hidden));
    });
    for (const button of $("attach-menu").querySelectorAll("button")) {
      button.addEventListener("click", () => onAttach(button.dataset.kind));
    }
    $("slash").addEventListener("click", () => { $("commands").hidden = !$("commands").hidden; });
    $("file").addEventListener("change", onFileChosen);
    $("reply-cancel").addEventListener("click", () => setReply(null));
    $("speaker").addEventListener("change", (event) => selectView(state.view.key, event.target.value));
  }

  async function start() {
    wireComposer();
    for (;;) {
      try {
        const data = await call("/_tryout/world");
        state.world = data;
        break;
      } catch (error) {
        setStatus("无法连接本地服务器 Cannot reach the local server");
        await sleep(2000);
      }
    }
    $("bot-name").textContent = state.world.bot.name;
    document.title = `${state.world.bot.name} · 试用 Try-out`;
    renderViews();
    const params = new URLSearchParams(location.hash.slice(1));
    selectView(params.get("view"), params.get("as"));
  }

  start();
})();
