/**
 * The steering view of a Maze-v0 run (#/run/:id/steer): pick a layer, the
 * cheese vector and a coefficient, and see the policy's action arrows on
 * every open square and each square's path probability (geometric mean of
 * the action probabilities along the shortest path from the start) change;
 * click a square to retarget by setting the cheese channel there; the edited
 * policy plays the maze on the canvas.
 */
import type { SteerView, SteerViewRequest } from "../../server/protocol.ts";
import { ApiRequestError, api } from "./api.ts";
import { GridCanvas } from "./canvas.ts";
import { h, option, setChildren, shortId } from "./dom.ts";
import type { CellSearch } from "./series.ts";

/** Per-square action probabilities as the canvas's arrow overlay (each square's shares sum to 1). */
function arrowsOf(v: SteerView): CellSearch {
  const { width, height } = v.frame;
  const n = v.actions.length;
  const totals = new Float64Array(width * height);
  for (let c = 0; c < width * height; c++) for (let a = 0; a < n; a++) totals[c]! += v.probs[c * n + a]!;
  return { width, height, nActions: n, visits: Float64Array.from(v.probs), totals };
}

/** The frame with each open square labelled by its path probability (percent). */
function labelled(v: SteerView, agentAt: number | null): SteerView["frame"] {
  const w = v.frame.width;
  const labels = v.pathProb.flatMap((p, c) => (p >= 0 ? [{ x: c % w, y: Math.floor(c / w), text: String(Math.round(100 * p)) }] : []));
  const agent = agentAt === null ? v.frame.agent : { x: agentAt % w, y: Math.floor(agentAt / w) };
  return { ...v.frame, labels, agent };
}

export function mountSteer(host: HTMLElement, runId: string): () => void {
  const canvas = new GridCanvas({ testid: "steer-canvas", maxCell: 44 });
  const layerSel = h("select", { "data-testid": "steer-layer" });
  const vectorSel = h(
    "select",
    { "data-testid": "steer-vector" },
    option("cheese", "cheese vector (mean of 64 mazes)", true),
    option("own", "this maze's own cheese vector"),
    option("none", "no vector"),
  );
  const coeff = h("input", { type: "range", min: "-4", max: "4", step: "0.5", value: "0", "data-testid": "steer-coeff" });
  const coeffText = h("span", { class: "mono", "data-testid": "steer-coeff-value" }, "0");
  const seed = h("input", { type: "number", min: "0", value: "0", class: "narrow", "data-testid": "steer-seed" });
  const clearTarget = h("button", { type: "button", "data-testid": "steer-clear-target" }, "Clear target");
  const status = h("p", { class: "small muted", "data-testid": "steer-status" }, "loading the policy…");
  const outcome = h("p", { class: "small", "data-testid": "steer-outcome" });
  let target: [number, number] | null = null;
  let current: SteerView | null = null;
  let animation: ReturnType<typeof setInterval> | null = null;
  let pending = 0;
  let gone = false;

  function show(v: SteerView): void {
    current = v;
    canvas.setSearch(arrowsOf(v), v.actions);
    canvas.setOverlays({ search: true });
    canvas.setFrame(labelled(v, null));
    host.querySelector<HTMLElement>("[data-testid=steer-view]")!.dataset.probs = v.probs.map((p) => p.toFixed(3)).join(",");
    const o = v.outcome;
    outcome.textContent = o
      ? `played greedily: ${o.cheese ? "reached the cheese" : "did not reach the cheese"}${o.topRight ? ", entered the top-right square first" : ""}${o.reachedTarget === null ? "" : o.reachedTarget ? ", reached the target" : ", missed the target"} (${v.trajectory.length - 1} steps)`
      : "";
    const ch = v.channel;
    status.textContent = `layer ${v.layer}${ch ? ` · retarget channel ${ch.channel} (value ${ch.value.toFixed(2)}; its peak at the cheese in ${Math.round(100 * ch.tracking)}% of mazes)` : " · dense layer: no retargeting"}${target ? ` · target [${target}]` : ""}`;
    // the agent plays the edited policy on the canvas
    if (animation) clearInterval(animation);
    let i = 0;
    animation = setInterval(() => {
      if (!current || i >= v.trajectory.length) {
        if (animation) clearInterval(animation);
        animation = null;
        return;
      }
      canvas.setFrame(labelled(v, v.trajectory[i++]!));
    }, 90);
  }

  async function refresh(): Promise<void> {
    const ticket = ++pending;
    const body: Partial<SteerViewRequest> & { layer: string } = {
      layer: layerSel.value,
      vector: vectorSel.value as SteerViewRequest["vector"],
      coeff: Number(coeff.value),
      seed: Math.max(0, Math.floor(Number(seed.value) || 0)),
      target,
      play: true,
    };
    coeffText.textContent = coeff.value;
    try {
      const v = await api.steer(runId, body);
      if (!gone && ticket === pending) show(v);
    } catch (e) {
      if (!gone) status.textContent = e instanceof ApiRequestError ? e.message : String(e);
    }
  }

  canvas.el.addEventListener("click", (ev) => {
    if (!current) return;
    const r = canvas.el.getBoundingClientRect();
    const x = Math.floor(((ev.clientX - r.left) / r.width) * current.frame.width);
    const y = Math.floor(((ev.clientY - r.top) / r.height) * current.frame.height);
    if (current.pathProb[y * current.frame.width + x]! < 0) return;
    target = [x, y];
    void refresh();
  });
  clearTarget.addEventListener("click", () => {
    target = null;
    void refresh();
  });
  for (const el of [layerSel, vectorSel, seed]) el.addEventListener("change", () => void refresh());
  coeff.addEventListener("input", () => void refresh());

  setChildren(
    host,
    h(
      "section",
      { class: "panel steer", "data-testid": "steer-view" },
      h(
        "h2",
        {},
        `Steer run ${shortId(runId)} `,
        h("a", { href: `#/run/${encodeURIComponent(runId)}`, class: "small" }, "back to the run"),
      ),
      h(
        "p",
        { class: "small muted" },
        "Arrows: the policy's action probabilities with the mouse on each square. Numbers: path probability (%), the geometric mean of the probabilities of the moves along the shortest path from the start. Click a square to set the cheese-tracking channel high there.",
      ),
      h(
        "div",
        { class: "steer-controls" },
        h("label", {}, "layer ", layerSel),
        h("label", {}, "vector ", vectorSel),
        h("label", {}, "coefficient ", coeff, " ", coeffText),
        h("label", {}, "maze ", seed),
        clearTarget,
      ),
      status,
      h("div", { class: "steer-canvas" }, canvas.el),
      outcome,
    ),
  );

  void api
    .steerLayers(runId)
    .then(({ layers }) => {
      if (gone) return;
      const spatial = layers.filter((l) => l.shape.length === 3);
      const pick = spatial[Math.floor(spatial.length / 2)] ?? layers.at(-2) ?? layers[0];
      setChildren(layerSel, ...layers.map((l) => option(l.name, `${l.name} [${l.shape.join("x")}]`, l === pick)));
      return refresh();
    })
    .catch((e) => {
      if (!gone) status.textContent = e instanceof ApiRequestError ? e.message : String(e);
    });

  return () => {
    gone = true;
    if (animation) clearInterval(animation);
  };
}
