/** The rendering as multi-document YAML, each resource headed by why it is shaped so. */
import { Document, isSeq, isNode } from 'yaml';
import type { RenderedIstio } from './resources.ts';

const WIDTH = 100;

/** Words wrapped to lines of at most WIDTH, each a YAML comment line (the leading space after "#"). */
function commentLines(paragraphs: readonly string[]): string {
  const lines: string[] = [];
  for (const paragraph of paragraphs) {
    let line = '';
    for (const word of paragraph.split(/\s+/)) {
      if (line !== '' && line.length + 1 + word.length > WIDTH) {
        lines.push(line);
        line = word;
      } else line = line === '' ? word : `${line} ${word}`;
    }
    if (line !== '') lines.push(line);
  }
  return lines.map((l) => ` ${l}`).join('\n');
}

export function renderedToYaml(rendered: RenderedIstio, header: readonly string[] = []): string {
  const annotations = Object.entries(rendered.podAnnotations);
  const preamble = [
    ...header,
    ...(annotations.length === 0
      ? []
      : ["meshgate's pod template needs, beside these resources:", ...annotations.map(([k, v]) => `  ${k}: "${v}"`)]),
  ];
  const texts = rendered.resources.map((resource, i) => {
    const doc = new Document(resource.object);
    const head = [...(i === 0 ? preamble : []), ...(i === 0 && preamble.length > 0 ? [''] : []), ...resource.comment];
    // The pod annotation lines are kept as they are: wrapping would break their indentation.
    doc.commentBefore = head.map((line) => (line.startsWith('  ') || line === '' ? ` ${line}` : commentLines([line]))).join('\n');
    const rules = doc.getIn(['spec', 'rules'], true);
    if (resource.ruleComments !== undefined && isSeq(rules)) {
      rules.items.forEach((item, r) => {
        const comment = resource.ruleComments?.[r];
        if (comment !== undefined && isNode(item)) item.commentBefore = commentLines([comment]);
      });
    }
    return doc.toString({ lineWidth: 0 });
  });
  return texts.join('---\n');
}
