// The report pages' print button (the browser's own print; the layout is print-*.css).
const button = document.getElementById("print");
if (button) button.addEventListener("click", () => window.print());
