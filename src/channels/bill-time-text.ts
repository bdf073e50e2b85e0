/** What the bill writers share: a bill's times as text, formatted once per second. */

/** `format` remembering its last answer: consecutive rows of a million-line bill often share a second. */
export function lastTimeTextCache(format: (date: Date) => string): (date: Date) => string {
  let lastTime = Number.NaN;
  let lastText = "";
  return (date) => {
    const time = date.getTime();
    if (time !== lastTime) {
      lastTime = time;
      lastText = format(date);
    }
    return lastText;
  };
}
