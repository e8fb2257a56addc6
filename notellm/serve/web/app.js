// notellm web page: search notes, show related notes (optionally diversified), generate tags, add notes.
// Plain DOM + fetch against the same app's JSON API; no build step, no framework.
"use strict";

const $ = (id) => document.getElementById(id);
let currentId = null;

async function api(path, options = {}) {
  const response = await fetch(path, { headers: { "content-type": "application/json" }, ...options });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    throw new Error(`${response.status}: ${detail}`);
  }
  return body;
}

function showError(error) {
  $("error").textContent = error.message;
  $("error").hidden = false;
  setTimeout(() => { $("error").hidden = true; }, 6000);
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// An absolute http(s) URL, or null: the page never turns data into a javascript:/data: link, whatever the API
// or an old index hands it (the service also validates urls on import and POST).
function safeHttpUrl(url) {
  try {
    const parsed = new URL(String(url));
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch (error) {
    return null;
  }
}

function sourceLink(url) {
  const href = safeHttpUrl(url);
  if (href === null) return el("span", "source", "");
  const a = el("a", "source", "source");
  a.href = href;
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  a.addEventListener("click", (event) => event.stopPropagation());
  return a;
}

function noteItem(note) {
  const li = el("li");
  li.dataset.noteId = note.note_id;
  if (note.score !== undefined) li.append(el("span", "score", note.score.toFixed(3)));
  li.append(el("span", "title", note.title || note.note_id), " ");
  if (note.url) li.append(sourceLink(note.url), " ");
  if (note.category) li.append(el("span", "category", note.category), " ");
  for (const tag of note.hashtags) li.append(el("span", "tag", "#" + tag));
  li.addEventListener("click", () => openNote(note.note_id));
  return li;
}

async function search(query) {
  const result = await api(`/notes?q=${encodeURIComponent(query)}&limit=20`);
  $("search-results").replaceChildren(...result.items.map(noteItem));
  if (!result.items.length) $("search-results").append(el("li", "muted", "no note title matches"));
}

async function openNote(noteId) {
  const note = await api(`/notes/${encodeURIComponent(noteId)}`);
  currentId = note.note_id;
  $("detail").hidden = false;
  $("note-title").textContent = note.title || note.note_id;
  $("note-source").replaceChildren(...(note.url ? [sourceLink(note.url)] : []));
  $("note-category").textContent = note.category;
  $("note-hashtags").replaceChildren(...note.hashtags.map((t) => el("span", "tag", "#" + t)));
  $("note-content").textContent = note.content;
  $("generated").textContent = "";
  await loadRelated();
}

async function loadRelated() {
  if (currentId === null) return;
  const k = Math.max(1, Math.min(100, parseInt($("k").value, 10) || 10));
  const method = $("diversify").value;
  const result = await api(`/notes/${encodeURIComponent(currentId)}/related?k=${k}&diversify=${method}`);
  $("related").dataset.diversify = result.diversify;
  $("related").replaceChildren(...result.items.map(noteItem));
}

async function generate() {
  const ids = JSON.stringify({ note_ids: [currentId], task: "hashtags", k: 3 });
  const tags = await api("/generate", { method: "POST", body: ids });
  const cat = await api("/generate", { method: "POST", body: JSON.stringify({ note_ids: [currentId], task: "category" }) });
  $("generated").textContent =
    `generated: ${tags.results[0].hashtags.map((t) => "#" + t).join(" ")} | category: ${cat.results[0].category}`;
}

async function addNote(event) {
  event.preventDefault();
  const note = {
    note_id: $("add-id").value.trim(),
    title: $("add-title").value.trim(),
    content: $("add-content").value,
    hashtags: $("add-hashtags").value.split(",").map((t) => t.trim()).filter(Boolean),
    category: $("add-category").value.trim(),
    url: $("add-url").value.trim(),
  };
  const result = await api("/notes", { method: "POST", body: JSON.stringify({ notes: [note] }) });
  $("add-status").textContent = `saved ${result.ids.join(", ")} (${result.notes_total} notes)`;
  $("search-input").value = note.title;
  await search(note.title);
}

async function health() {
  const h = await api("/health");
  $("health").textContent = `${h.notes} notes · ${h.backend} · dim ${h.dim}${h.model ? " · " + h.model : ""}`;
  $("generate-btn").hidden = !h.can_generate;
}

const guard = (fn) => (...args) => fn(...args).catch(showError);
$("search-form").addEventListener("submit", guard(async (e) => { e.preventDefault(); await search($("search-input").value); }));
$("diversify").addEventListener("change", guard(loadRelated));
$("k").addEventListener("change", guard(loadRelated));
$("generate-btn").addEventListener("click", guard(generate));
$("add-form").addEventListener("submit", guard(addNote));
guard(health)();
guard(search)("");
