// Worker threads do not inherit the main thread's tsx loader: register it here.
import { register } from "tsx/esm/api";

register();
await import("./worker.ts");
