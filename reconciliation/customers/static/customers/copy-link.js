// "Copy link" next to a hosted-page link (templates/customers/admin/copy_link.html).
// A static file, not an inline handler: the admin runs under a Content-Security-Policy that
// allows scripts from this origin only.
"use strict";
document.addEventListener("click", function (event) {
  const button = event.target.closest("button[data-mlc-copy]");
  if (!button) {
    return;
  }
  const input = document.getElementById(button.dataset.mlcCopy);
  if (!input) {
    return;
  }
  input.select();
  const copied = navigator.clipboard
    ? navigator.clipboard.writeText(input.value)
    : Promise.resolve(document.execCommand("copy"));
  copied.then(function () {
    button.textContent = "Copied";
  });
});
