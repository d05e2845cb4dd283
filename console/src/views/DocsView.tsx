// "Learn More": the documentation for receivers, rendered in the console.

import { useMemo, type MouseEvent } from "react";
import receiving from "../../../docs/receiving-webhooks.md?raw";
import { renderMarkdown } from "../docs";
import { href } from "../route";

export function DocsView() {
  const html = useMemo(() => renderMarkdown(receiving), []);
  // In-page links (#verifying-the-signature) scroll; the URL fragment stays the console's route.
  const onClick = (e: MouseEvent<HTMLElement>) => {
    const link = (e.target as HTMLElement).closest<HTMLAnchorElement>("a[data-anchor]");
    if (!link) return;
    e.preventDefault();
    const target = document.getElementById(link.dataset.anchor ?? "");
    if (target) {
      target.setAttribute("tabindex", "-1");
      target.scrollIntoView();
      target.focus({ preventScroll: true });
    }
  };
  return (
    <article className="doc" aria-label="Receiving webhooks documentation">
      <p className="crumbs">
        <a href={href({ name: "list" })}>Webhooks</a> / Learn More
      </p>
      <div onClick={onClick} dangerouslySetInnerHTML={{ __html: html }} />
    </article>
  );
}
