/** Rampart's library entry point: the pure firewall model, parsers and tracer. */

export * from './errors.js';
export { detectFormat } from './firewall/detect.js';
export * from './firewall/model.js';
export { mergeRulesets, type ParseOptions, parseRuleset } from './firewall/parse.js';
export { type IptablesOptions, parseIptablesSave } from './firewall/parsers/iptables-save.js';
export { convertNftJson, parseNftJson, renderNftExpr } from './firewall/parsers/nft-json.js';
export { type IncludedFile, type NftTextOptions, nftTextToJson, parseNftText } from './firewall/parsers/nft-text.js';
export { describeDecider, describePacket, renderTrace } from './firewall/render-trace.js';
export { summarizeRuleset } from './firewall/summary.js';
export * from './firewall/tracer.js';
export * from './firewall/values.js';
