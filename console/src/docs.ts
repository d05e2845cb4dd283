// "Learn More": docs/receiving-webhooks.md, imported as text at build time and rendered with
// marked. The file is the project's own (reviewed in the repository, checked by its tests), so
// its HTML is trusted; headings get GitHub-style ids so the page's own #anchors work.

import { Marked, type Tokens } from "marked";
import { slugify } from "./format";

function attr(value: string): string {
  return value.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
}

export function renderMarkdown(markdown: string): string {
  const seen = new Map<string, number>();
  const marked = new Marked({
    gfm: true,
    renderer: {
      heading(this: { parser: { parseInline(tokens: Tokens.Generic[]): string } }, token: Tokens.Heading) {
        const base = slugify(token.text);
        const n = seen.get(base) ?? 0;
        seen.set(base, n + 1);
        const id = n === 0 ? base : `${base}-${n}`;
        return `<h${token.depth} id="${id}">${this.parser.parseInline(token.tokens)}</h${token.depth}>\n`;
      },
      link(this: { parser: { parseInline(tokens: Tokens.Generic[]): string } }, token: Tokens.Link) {
        const text = this.parser.parseInline(token.tokens);
        const target = token.href;
        if (target.startsWith("#")) return `<a href="${attr(target)}" data-anchor="${attr(target.slice(1))}">${text}</a>`;
        if (/^https?:\/\//.test(target)) {
          return `<a href="${attr(target)}" target="_blank" rel="noopener noreferrer">${text}</a>`;
        }
        // Links to the repository's other files (docs/grpc-api.md, ...) do not exist here.
        return `<span class="doc-ref" title="${attr(target)} in the service's repository">${text}</span>`;
      },
    },
  });
  return marked.parse(markdown, { async: false });
}
