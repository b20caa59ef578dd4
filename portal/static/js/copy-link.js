// "Copier le lien" on the page that shows a new upload link once. The button stays hidden
// without script (the address can still be selected and copied by hand).
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("button[data-copy]").forEach((button) => {
    const input = document.getElementById(button.dataset.copy);
    const status = button.parentElement.querySelector(".copy-status");
    if (!input) return;
    button.hidden = false;
    button.addEventListener("click", async () => {
      input.select();
      try {
        await navigator.clipboard.writeText(input.value);
      } catch (error) {
        document.execCommand("copy");
      }
      if (status) status.textContent = button.dataset.copied;
    });
  });
});
