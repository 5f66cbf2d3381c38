/**
 * The Results routes: the comparison tables `compare` wrote into the data
 * folder (data/reports/compare-*.json, each naming its commit), and the test
 * episodes kept behind each probe table cell (experiments/probe-episodes.ts),
 * for the client's Results and episodes views. Read-only; every name is
 * checked against a fixed pattern before it reaches the file system.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import express from "express";
import { ValidationError } from "../envs/errors.ts";
import { NotFoundError } from "../experiments/manager.ts";
import { conditionName, episodesKey, loadProbeEpisodes } from "../experiments/probe-episodes.ts";
import type { ResultsFile, ResultsListing } from "./protocol.ts";

const NAME = /^compare-[A-Za-z0-9-]{1,80}$/;
/** A report larger than this is listed but not served (a comparison of every probe is about 1 MB). */
const MAX_BYTES = 32 * 1024 * 1024;
const MAX_LISTED = 200;

function reportsDir(dataDir: string): string {
  return join(dataDir, "reports");
}

function readReport(dataDir: string, name: string): ResultsFile {
  if (!NAME.test(name)) throw new ValidationError(`"${name}" is not a comparison's name (compare-<time>)`);
  const file = join(reportsDir(dataDir), `${name}.json`);
  if (!existsSync(file)) throw new NotFoundError(`no comparison ${name} in the data folder`);
  if (statSync(file).size > MAX_BYTES)
    throw new ValidationError(`comparison ${name} is over ${MAX_BYTES / 2 ** 20} MB; read the file itself`);
  const r = JSON.parse(readFileSync(file, "utf8")) as Omit<ResultsFile, "name">;
  return { ...r, name, sections: r.sections.map((s) => ({ ...s, episodesKey: s.episodesKey ?? episodesKey(name, s.probe, s.env) })) };
}

function listing(dataDir: string): ResultsListing[] {
  const dir = reportsDir(dataDir);
  if (!existsSync(dir)) return [];
  const names = readdirSync(dir)
    .filter((f) => f.endsWith(".json") && NAME.test(f.slice(0, -5)))
    .map((f) => f.slice(0, -5))
    .sort()
    .reverse()
    .slice(0, MAX_LISTED);
  const out: ResultsListing[] = [];
  for (const name of names) {
    try {
      const r = readReport(dataDir, name);
      out.push({
        name,
        commit: r.commit ?? null,
        seeds: r.seeds,
        agents: r.agents,
        probes: r.sections.map((s) => `${s.probe} (${s.env})`),
        complete: r.probesPlanned === undefined,
        seconds: r.seconds,
      });
    } catch {
      // a half-written or foreign file is skipped, never a 500 for the list
    }
  }
  return out;
}

const str = (v: unknown, what: string): string => {
  if (typeof v !== "string" || v.length === 0 || v.length > 200)
    throw new ValidationError(`query parameter ${what} is required (a string)`);
  return v;
};

export function resultsRouter(dataDir: string): express.Router {
  const r = express.Router();
  r.get("/results", (_req, res) => {
    res.json(listing(dataDir));
  });
  r.get("/results/:name", (req, res) => {
    res.json(readReport(dataDir, req.params.name));
  });
  // the HTML report compare wrote beside the JSON: its per-seed rates link to the client's episodes view
  r.get("/results/:name/report", (req, res) => {
    const name = req.params.name;
    if (!NAME.test(name)) throw new ValidationError(`"${name}" is not a comparison's name (compare-<time>)`);
    const file = join(reportsDir(dataDir), `${name}.html`);
    if (!existsSync(file)) throw new NotFoundError(`no HTML report ${name} in the data folder`);
    if (statSync(file).size > MAX_BYTES)
      throw new ValidationError(`report ${name} is over ${MAX_BYTES / 2 ** 20} MB; open the file itself`);
    res.type("html").send(readFileSync(file, "utf8"));
  });
  r.get("/probe-episodes", (req, res) => {
    const q = req.query;
    const seed = Number(str(q.seed, "seed"));
    if (!Number.isInteger(seed) || seed < 0) throw new ValidationError("query parameter seed must be a non-negative integer");
    let eps: ReturnType<typeof loadProbeEpisodes>;
    try {
      const budget = typeof q.budget === "string" && q.budget !== "" ? Number(q.budget) : undefined;
      const condition = conditionName({
        evaluation: str(q.evaluation, "evaluation"),
        mode: typeof q.mode === "string" ? q.mode : undefined,
        budget: budget !== undefined && Number.isInteger(budget) ? budget : undefined,
      });
      eps = loadProbeEpisodes(dataDir, str(q.key, "key"), str(q.entry, "entry"), typeof q.arm === "string" ? q.arm : "", seed, condition);
    } catch (e) {
      throw new ValidationError((e as Error).message);
    }
    if (!eps)
      throw new NotFoundError("no episodes kept for this cell (older than the newest 40 probes and comparisons, or from a queued sweep)");
    res.json(eps);
  });
  return r;
}
