// Ships the shared retry policy (clients/service-config.json) inside the package, where
// src/service-config.ts reads it: an installed package has no clients/ folder beside it.
import { copyFileSync } from "node:fs";
copyFileSync(new URL("../../service-config.json", import.meta.url), new URL("../dist/service-config.json", import.meta.url));
