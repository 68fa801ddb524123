import { decodeCommand } from '../src/engines/mysql/codec/commands.ts';
import { encodeMessage } from '../src/engines/mysql/codec/framer.ts';
import { imitatesTag, spliceTag, sessionEffects, definerEdits, extractTraceparent, statementVerb } from '../src/engines/mysql/sql/index.ts';
const n = 16 * 1024 * 1024 - 100;
const payload = Buffer.alloc(n, 0x61); payload[0] = 3; payload.write("SELECT '", 1);
const frame = { seq: 0, lastSeq: 0, payload, raw: encodeMessage(payload, 0) };
for (let k = 0; k < 3; k++) {
  const t = (f: () => unknown) => { const s = performance.now(); f(); return (performance.now() - s).toFixed(1); };
  let cmd: any;
  console.log({
    decode: t(() => (cmd = decodeCommand(payload))),
    imit: t(() => imitatesTag(payload, cmd.text)),
    effects: t(() => sessionEffects(cmd.text)),
    definer: t(() => definerEdits(cmd.text, { multiStatements: true })),
    trace: t(() => extractTraceparent(cmd.text)),
    verb: t(() => statementVerb(cmd.text)),
    splice: t(() => spliceTag(frame, "/*meshgate_identity='x',meshgate_role='y'", 'a'.repeat(32))),
  });
}
