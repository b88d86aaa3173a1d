// The dashboard's router: #/login, #/jobs, #/jobs/<id>, #/compare/<id,id>,
// #/workspaces, #/datasets. Each page returns the function that stops its polling.
import "./style.css";
import { session, signedIn, signOut } from "./api.js";
import { jobPage } from "./job.js";
import { jobsPage } from "./jobs.js";
import { comparePage, listPage, loginPage } from "./pages.js";

const root = document.getElementById("page");
const nav = document.getElementById("nav");
let leave = () => {};

function route() {
  leave();
  const [, page = "jobs", arg] = window.location.hash.split("/");
  if (!signedIn() && page !== "login") {
    window.location.hash = "#/login";
    return;
  }
  nav.hidden = !signedIn();
  document.getElementById("who").textContent = signedIn() ? `org ${session().org}` : "";
  if (page === "login") leave = loginPage(root, () => (window.location.hash = "#/jobs"));
  else if (page === "jobs" && arg) leave = jobPage(root, decodeURIComponent(arg));
  else if (page === "compare" && arg) leave = comparePage(root, decodeURIComponent(arg).split(","));
  else if (page === "workspaces" || page === "datasets") leave = listPage(root, page);
  else leave = jobsPage(root);
}

document.getElementById("logout").addEventListener("click", () => {
  signOut();
  window.location.hash = "#/login";
});
window.addEventListener("hashchange", route);
route();
