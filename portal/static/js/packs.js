// The pack panel of the case page follows its pack without a reload: while a version is queued
// or being built, ask the server for the panel every 2 s and swap it in (it is rendered by the
// same template as the page, so the markup and its forms stay the server's).
document.addEventListener("DOMContentLoaded", () => {
  const poll = async () => {
    const panel = document.getElementById("pochette");
    if (!panel || panel.dataset.busy !== "1") return;
    try {
      const response = await fetch(panel.dataset.stateUrl, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (response.ok) {
        const state = await response.json();
        const next = document.createElement("div");
        next.innerHTML = state.html;
        const fresh = next.querySelector("#pochette");
        if (fresh) {
          panel.replaceWith(fresh);
          // The panel is new markup: say the outcome through a live region that stays put.
          const outcome = fresh.querySelector(".pack-ready strong, .pack-status .error");
          const announce = document.getElementById("pack-announce");
          if (!state.busy && outcome && announce) announce.textContent = outcome.textContent;
        }
      }
    } catch (error) {
      // offline for a moment: try again at the next tick
    }
    setTimeout(poll, 2000);
  };
  setTimeout(poll, 2000);
});
