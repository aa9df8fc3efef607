/**
 * The few DOM helpers the apps share: `h` builds an element from a tag, its properties and children
 * (text is always set as text, never parsed as HTML), and money is shown and read in dollars while the
 * API speaks integer cents.
 */
type Child = Node | string | number | null | undefined | false;
type Props = Record<string, unknown> & { class?: string; on?: Record<string, (event: Event) => void> };

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props | null = null,
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (name === 'on') {
      for (const [type, listener] of Object.entries(value as Record<string, EventListener>))
        element.addEventListener(type, listener);
    } else if (name === 'class') element.className = String(value);
    else if (name.startsWith('aria-') || name.startsWith('data-') || name === 'role' || name === 'for')
      element.setAttribute(name, String(value));
    else if (value !== undefined && value !== null && value !== false) Reflect.set(element, name, value);
  }
  element.append(...nodes(children));
  return element;
}

function nodes(children: (Child | Child[])[]): (Node | string)[] {
  return children
    .flat()
    .flatMap((child) =>
      child === null || child === undefined || child === false
        ? []
        : [child instanceof Node ? child : String(child)],
    );
}

/** Replaces the children of `parent`. */
export function mount(parent: Element, ...children: (Child | Child[])[]): void {
  parent.replaceChildren(...nodes(children));
}

/** The dark bar on top of every page: the brand and the app's name, then what the page puts on the right. */
export function topbar(app: string | null, ...right: (Node | null)[]): HTMLElement {
  return h(
    'header',
    { class: 'topbar' },
    h(
      'div',
      { class: 'brand' },
      h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, 'p'),
      'paycode',
      app ? h('small', null, app) : null,
    ),
    h('div', { class: 'spacer' }),
    ...right,
  );
}

let fieldIds = 0;

/** A labelled input: the label is visible and names the control for assistive technology. */
export function field(
  label: string,
  input: HTMLInputElement | HTMLSelectElement,
  hint?: string,
): HTMLElement {
  input.id ||= `field-${++fieldIds}`;
  const hintElement = hint ? h('small', { class: 'hint', id: `${input.id}-hint` }, hint) : null;
  if (hintElement) input.setAttribute('aria-describedby', hintElement.id);
  return h('div', { class: 'field' }, h('label', { for: input.id }, label), input, hintElement);
}

export { dollars as money, parseDollars } from '../../core/money.ts';

/**
 * `+1 (555) 555-0123`, `555 555 0123` → E.164 as the server takes it; null when it cannot be one. The
 * server then keeps the canonical form of the number and refuses one no phone can have (core/phone.ts),
 * with a message the page shows; libphonenumber's metadata would make the wallet four times heavier.
 */
export function normalizePhone(text: string): string | null {
  let digits = text.replace(/[\s().-]/g, '');
  if (/^\d{10}$/.test(digits)) digits = `+1${digits}`;
  else if (/^1\d{10}$/.test(digits)) digits = `+${digits}`;
  return /^\+[1-9]\d{6,14}$/.test(digits) ? digits : null;
}

const timeFormat = new Intl.DateTimeFormat('en-US', { dateStyle: 'medium', timeStyle: 'short' });

/** A count with its noun, plural unless one: "1 sale", "1,200 sales". */
export function plural(count: number, noun: string): string {
  return `${count.toLocaleString('en-US')} ${noun}${count === 1 ? '' : 's'}`;
}

export function when(atMs: number): string {
  return timeFormat.format(new Date(atMs));
}

/** A status line that screen readers announce. */
export function notice(kind: 'ok' | 'error' | 'warn' | 'info', ...children: Child[]): HTMLElement {
  return h('div', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, ...children);
}

/** Runs `action` with the button disabled, so a double click sends one request. */
export async function busy<T>(button: HTMLButtonElement, action: () => Promise<T>): Promise<T> {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await action();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}
