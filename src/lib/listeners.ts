// A list of callbacks for one kind of event (a transport's hang-up, keypad digit, played frame...).
export class Listeners<Args extends unknown[]> {
  private fns: ((...args: Args) => void)[] = [];

  add(fn: (...args: Args) => void): void {
    this.fns.push(fn);
  }

  emit(...args: Args): void {
    for (const fn of this.fns) fn(...args);
  }
}

/**
 * An event that happens once (a transport's hang-up): a listener added after it hears it at once. A caller may hang
 * up, or be refused, while the call's session is still loading and not listening yet; the hang-up must not be lost.
 */
export class OnceEvent<Args extends unknown[]> {
  private fired: Args | undefined;
  private readonly listeners = new Listeners<Args>();

  add(fn: (...args: Args) => void): void {
    if (this.fired) fn(...this.fired);
    else this.listeners.add(fn);
  }

  emit(...args: Args): void {
    if (this.fired) return;
    this.fired = args;
    this.listeners.emit(...args);
  }
}
