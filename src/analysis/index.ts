/** The packet-space engine: BDD-backed packet sets and rulesets compiled to verdict sets. */
export { Bdd } from './bdd.js';
export type { CompiledBddRuleset, CompileOptions } from './compile.js';
export { ChainMemo, compileRuleset, createChainMemo } from './compile.js';
export type { AbsentFields, FieldLayout, PacketSpaceOptions } from './packet-space.js';
export {
  BddPacketSet,
  BddPacketSpace,
  createPacketSpace,
  DEFAULT_FIELD_ORDER,
  SOURCE_FIRST_ORDER,
} from './packet-space.js';
export type {
  CompiledRuleset,
  Cube,
  Decider,
  Decision,
  PacketSet,
  PacketSpace,
  PathEndRef,
  PolicyRef,
  RuleRef,
} from './types.js';
