/**
 * Entry point: hash routing between the views and the connection indicator.
 *   #/                 the live demo (a comparison of the demo runs), runs list + launcher
 *   #/run/:id          live run view
 *   #/run/:id/steer    steering view of a Maze-v0 run
 *   #/compare?ids=a,b  comparison (+ probes)
 *   #/probes           probes
 *   #/sweeps?id=…      sweeps (spec editor, progress, probe tables)
 *   #/results[/name]   comparison tables written by `compare`, with their commit
 *   #/episodes?key=…   the test episodes behind a probe table cell
 */
import "./style.css";
import { api } from "./api.ts";
import { mountCompare } from "./compare.ts";
import { h, learnRunOrder, setChildren } from "./dom.ts";
import { mountLauncher } from "./launcher.ts";
import { mountProbes } from "./probes.ts";
import { mountRunsList } from "./runs.ts";
import { mountRunView } from "./runview.ts";
import { mountSteer } from "./steer.ts";
import { mountSweeps } from "./sweeps.ts";
import { mountResults } from "./results.ts";
import { mountEpisodes, parseEpisodesRef } from "./episodes.ts";
import { onConnection, onRuns } from "./socket.ts";

type Route =
  | { view: "home" }
  | { view: "run"; id: string }
  | { view: "steer"; id: string }
  | { view: "compare"; ids: string[] }
  | { view: "probes" }
  | { view: "sweeps"; id?: string }
  | { view: "results"; name?: string }
  | { view: "episodes"; params: URLSearchParams }
  | { view: "missing"; hash: string };

export function parseRoute(hash: string): Route {
  const raw = hash.replace(/^#/, "") || "/";
  const [path = "/", query = ""] = raw.split("?");
  const params = new URLSearchParams(query);
  const parts = path.split("/").filter(Boolean);
  if (parts.length === 0) return { view: "home" };
  if (parts[0] === "run" && parts[1] && parts[2] === "steer") return { view: "steer", id: decodeURIComponent(parts[1]) };
  if (parts[0] === "run" && parts[1]) return { view: "run", id: decodeURIComponent(parts[1]) };
  if (parts[0] === "compare") {
    const ids = (params.get("ids") ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    return { view: "compare", ids };
  }
  if (parts[0] === "probes") return { view: "probes" };
  if (parts[0] === "results") return parts[1] ? { view: "results", name: decodeURIComponent(parts[1]) } : { view: "results" };
  if (parts[0] === "episodes") return { view: "episodes", params };
  if (parts[0] === "sweeps") {
    const id = parts[1] ? decodeURIComponent(parts[1]) : params.get("id");
    return id ? { view: "sweeps", id } : { view: "sweeps" };
  }
  return { view: "missing", hash };
}

const app = document.getElementById("app")!;
let unmount: (() => void) | null = null;

/** Mounts one view on the whole page and names the tab after it. */
function show(mount: (el: HTMLElement) => () => void, title: string): void {
  setChildren(app);
  unmount = mount(app);
  document.title = `${title} · rewardlab`;
}

function render(): void {
  unmount?.();
  unmount = null;
  const route = parseRoute(location.hash);
  app.dataset.view = route.view;
  document.querySelectorAll<HTMLAnchorElement>(".topbar nav a").forEach((a) => {
    const target = parseRoute(a.getAttribute("href") ?? "").view;
    a.classList.toggle("active", target === route.view || (route.view === "run" && target === "home"));
  });
  switch (route.view) {
    case "home": {
      const launcherHost = h("section", { class: "panel launcher-panel" });
      const runsHost = h("section", { class: "panel runs-panel" });
      const demoHost = h("div", { class: "home-demo", "data-testid": "home-demo" });
      setChildren(app, demoHost, h("div", { class: "home" }, runsHost, launcherHost));
      const a = mountRunsList(runsHost);
      const b = mountLauncher(launcherHost);
      // the first thing a visitor sees is live: the demo runs side by side (watching them keeps them training)
      let c: (() => void) | null = null;
      let gone = false;
      void api
        .runs()
        .then((runs) => {
          const demo = runs.filter((r) => (r.spec as { label?: string }).label === "demo").sort((x, y) => x.createdAt - y.createdAt);
          if (gone || demo.length === 0) return;
          const agents = demo.map((r) => r.spec.agent).join(" and ");
          c = mountCompare(
            demoHost,
            demo.map((r) => r.id),
            {
              mode: "demo",
              title: `Live demo: ${agents} on ${demo[0]!.spec.env} (trains while you watch)`,
            },
          );
        })
        .catch(() => undefined);
      unmount = () => {
        gone = true;
        a();
        b();
        c?.();
      };
      document.title = "rewardlab";
      break;
    }
    case "run":
      show((el) => mountRunView(el, route.id), `run ${route.id}`);
      break;
    case "steer":
      show((el) => mountSteer(el, route.id), `steer ${route.id}`);
      break;
    case "compare":
      show((el) => mountCompare(el, route.ids), "compare");
      break;
    case "probes":
      show(mountProbes, "probes");
      break;
    case "sweeps":
      show((el) => mountSweeps(el, route.id), "sweeps");
      break;
    case "results":
      show((el) => mountResults(el, route.name), "results");
      break;
    case "episodes":
      show((el) => mountEpisodes(el, parseEpisodesRef(route.params)), "episodes");
      break;
    default:
      setChildren(
        app,
        h(
          "section",
          { class: "panel" },
          h("h2", {}, "Not found"),
          h("p", {}, `No view for ${route.hash}. `, h("a", { href: "#/" }, "Back to runs")),
        ),
      );
  }
  window.scrollTo(0, 0);
}

// connection indicator (and a banner while the server is away)
const conn = document.querySelector<HTMLElement>("[data-testid=conn-status]")!;
const banner = document.getElementById("banner")!;
onConnection((state, detail) => {
  conn.dataset.state = state;
  conn.textContent = state === "connected" ? "live" : state === "connecting" ? "connecting…" : "offline";
  conn.title = detail ? `${state}: ${detail}` : state;
  banner.hidden = state === "connected";
  if (state !== "connected") banner.textContent = `Connection to the server lost${detail ? ` (${detail})` : ""}; reconnecting…`;
});
// the first connection is not worth a banner
banner.hidden = true;

// run colours follow the runs' creation order: learn it before the first view draws, and keep it current
onRuns((e) => learnRunOrder(e.runs));
window.addEventListener("hashchange", render);
void api
  .runs()
  .then(learnRunOrder)
  .catch(() => undefined)
  .finally(render);
