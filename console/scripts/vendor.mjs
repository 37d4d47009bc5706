// Copies Apache ECharts' browser bundle and the licences of everything inside it from node_modules
// into site/vendor/, the folder nginx serves. Run after changing the echarts version in package.json:
//   cd console && npm ci && npm run vendor
// The result is committed, so neither `make run` nor the tests need npm or the network.
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const modules = join(root, "node_modules");
const target = join(root, "site", "vendor", "echarts");
mkdirSync(target, { recursive: true });

const files = [
  ["echarts/dist/echarts.esm.min.mjs", "echarts.esm.min.mjs"],
  ["echarts/LICENSE", "LICENSE-echarts.txt"],
  ["echarts/NOTICE", "NOTICE-echarts.txt"],
  // The bundle contains zrender (BSD-3-Clause) and tslib (0BSD); their licences travel with it.
  ["zrender/LICENSE", "LICENSE-zrender.txt"],
  ["tslib/LICENSE.txt", "LICENSE-tslib.txt"],
];
const lines = [];
for (const [from, to] of files) {
  copyFileSync(join(modules, from), join(target, to));
  const digest = createHash("sha256").update(readFileSync(join(target, to))).digest("hex");
  lines.push(`${digest}  ${to}`);
}
const version = (name) => JSON.parse(readFileSync(join(modules, name, "package.json"), "utf8")).version;
const header = [
  `echarts ${version("echarts")} (Apache-2.0), zrender ${version("zrender")} (BSD-3-Clause), tslib ${version("tslib")} (0BSD)`,
  "from the npm registry; copied by console/scripts/vendor.mjs. sha256:",
];
writeFileSync(join(target, "VERSIONS.txt"), [...header, ...lines, ""].join("\n"));
console.log(`vendored into ${target}`);
