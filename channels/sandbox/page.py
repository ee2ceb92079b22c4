"""The sandbox's phone page: one HTML file, no build step, no external assets."""

PHONE_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Hotline sandbox phone</title>
<style>
  body { font-family: system-ui, sans-serif; background: #e9ecef; margin: 0; }
  main { max-width: 420px; margin: 1.5rem auto; background: #fff; border-radius: 18px;
         box-shadow: 0 4px 18px rgba(0,0,0,.15); display: flex; flex-direction: column; height: 86vh; }
  header { padding: .8rem 1rem; border-bottom: 1px solid #ddd; display: flex; gap: .5rem; flex-wrap: wrap; }
  header label { font-size: .8rem; color: #555; display: flex; flex-direction: column; }
  header select, header input { font-size: 1rem; padding: .25rem; }
  #thread { flex: 1; overflow-y: auto; padding: 1rem; display: flex; flex-direction: column; gap: .4rem; }
  .msg { max-width: 80%; padding: .5rem .7rem; border-radius: 14px; white-space: pre-wrap; word-wrap: break-word; }
  .in { align-self: flex-end; background: #0b93f6; color: #fff; }
  .out { align-self: flex-start; background: #e5e5ea; color: #000; }
  .meta { font-size: .7rem; opacity: .7; margin-top: .2rem; }
  form { display: flex; gap: .4rem; padding: .6rem; border-top: 1px solid #ddd; }
  textarea { flex: 1; font-size: 1rem; resize: none; height: 3rem; }
  button { font-size: 1rem; }
  #notice { font-size: .8rem; color: #a00; padding: 0 1rem; min-height: 1rem; }
  .whatsapp .in { background: #dcf8c6; color: #000; }
</style>
</head>
<body>
<main id="phone">
  <header>
    <label>Channel
      <select id="channel"><option value="sms">SMS</option><option value="whatsapp">WhatsApp</option></select>
    </label>
    <label>Your number <input id="number" value="+258840000001" size="15"></label>
  </header>
  <div id="thread" aria-live="polite"></div>
  <div id="notice"></div>
  <form id="compose">
    <textarea id="body" placeholder="Write to the hotline (pt, en, fr, sw)"></textarea>
    <button type="submit">Send</button>
    <button type="button" id="photo" title="Send a photo without text">&#128247;</button>
  </form>
</main>
<script>
const $ = (id) => document.getElementById(id);
const who = () => ({ channel: $("channel").value, number: $("number").value.trim() });
let shown = "";

async function send(body, media) {
  $("notice").textContent = "";
  const reply = await fetch("/phone/send", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ ...who(), body, media }),
  });
  const data = await reply.json();
  if (!reply.ok || data.webhook_status !== 200) {
    $("notice").textContent = data.error || ("the gateway answered " + data.webhook_status);
  }
  refresh();
}

async function refresh() {
  const reply = await fetch("/phone/thread", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(who()),
  });
  if (!reply.ok) return;
  const { messages } = await reply.json();
  const key = JSON.stringify(messages);
  if (key === shown) return;
  shown = key;
  const thread = $("thread");
  thread.replaceChildren(...messages.map((m) => {
    const bubble = document.createElement("div");
    bubble.className = "msg " + m.direction;
    bubble.textContent = m.media && !m.body ? "[photo]" : m.body;
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = new Date(m.at * 1000).toLocaleTimeString() + (m.direction === "out" ? " · " + m.status : "");
    bubble.appendChild(meta);
    return bubble;
  }));
  thread.scrollTop = thread.scrollHeight;
}

$("compose").addEventListener("submit", (event) => {
  event.preventDefault();
  const body = $("body").value;
  if (!body.trim()) return;
  $("body").value = "";
  send(body, false);
});
$("body").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("compose").requestSubmit(); }
});
$("photo").addEventListener("click", () => send("", true));
$("channel").addEventListener("change", () => {
  $("phone").className = $("channel").value; shown = ""; refresh();
});
$("number").addEventListener("change", () => { shown = ""; refresh(); });
setInterval(refresh, 1000);
refresh();
</script>
</body>
</html>
"""
