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
