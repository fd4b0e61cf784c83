// Contoso Chat page: keeps the conversation in the browser and posts each turn to /api/chat.
// Answers are inserted as text, never as HTML, so nothing in an answer can run in the page.
(function () {
  const MAX_TURNS = 10;
  const history = [];
  const form = document.getElementById("ask");
  const question = document.getElementById("question");
  const send = document.getElementById("send");
  const messages = document.getElementById("messages");
  const status = document.getElementById("status");
  const token = document.getElementById("token");

  const fromFragment = new URLSearchParams(window.location.hash.slice(1)).get("token");
  if (fromFragment) {
    token.value = fromFragment;
    window.history.replaceState(null, "", window.location.pathname);
  }

  function add(role, text, citations) {
    const item = document.createElement("li");
    item.className = role;
    const body = document.createElement("p");
    body.textContent = text;
    item.appendChild(body);
    if (citations && citations.length) {
      const sources = document.createElement("p");
      sources.className = "citations";
      sources.textContent = "Sources: " + citations.join(", ");
      item.appendChild(sources);
    }
    messages.appendChild(item);
    item.scrollIntoView({ block: "end" });
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const text = question.value.trim();
    if (!text) { status.textContent = "Type a question first."; return; }
    add("user", text);
    question.value = "";
    send.disabled = true;
    status.textContent = "Contoso Chat is thinking...";
    try {
      const response = await fetch("/api/chat", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Authorization": "Bearer " + token.value.trim() },
        body: JSON.stringify({ question: text, chat_history: history.slice(-MAX_TURNS) }),
      });
      const body = await response.json();
      if (response.ok) {
        add("assistant", body.answer, body.citations);
        history.push({ role: "user", content: text }, { role: "assistant", content: body.answer });
        status.textContent = "";
      } else {
        const wait = response.headers.get("Retry-After");
        status.textContent = body.error.message + (wait ? " (retry in " + wait + " s)" : "");
      }
    } catch (error) {
      status.textContent = "The chat service cannot be reached. Check your connection and try again.";
    } finally {
      send.disabled = false;
      question.focus();
    }
  });
})();
