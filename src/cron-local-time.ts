// node-cron's two Intl.DateTimeFormat uses for the local time zone, computed with Date instead: the bundle swaps them in (scripts/build-bundle.mjs), because creating one Intl.DateTimeFormat costs a daemon about 8 MiB (ICU's locale and calendar data).
//
// node-cron reads the wall-clock parts of a date with Intl.DateTimeFormat('en-US', {year: 'numeric', month,
// day, hour, minute, second: '2-digit', weekday: 'short', hour12: false}).formatToParts(), and the UTC offset with
// {timeZoneName: 'shortOffset'} ('GMT', 'GMT+1', 'GMT-3:30'). Without a timeZone option both describe the process's
// local time zone, which Date's local getters give as well (V8 takes both from the same time zone data).
// test/unit/cron-local-time.test.ts compares them with Intl over a year of dates in several zones.

type Part = { type: string; value: string };

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const two = (n: number) => String(n).padStart(2, '0');

/** Stands in for node-cron's parts formatter when it is given no time zone. */
export const localParts = {
  formatToParts(date: Date): Part[] {
    return [
      { type: 'weekday', value: WEEKDAYS[date.getDay()]! },
      { type: 'month', value: two(date.getMonth() + 1) },
      { type: 'day', value: two(date.getDate()) },
      { type: 'year', value: String(date.getFullYear()) },
      { type: 'hour', value: two(date.getHours()) },
      { type: 'minute', value: two(date.getMinutes()) },
      { type: 'second', value: two(date.getSeconds()) },
    ];
  },
};

/** Stands in for node-cron's UTC-offset formatter when it is given no time zone: 'GMT', 'GMT+1', 'GMT-3:30'. */
export const localOffset = {
  formatToParts(date: Date): Part[] {
    const east = -date.getTimezoneOffset();
    const abs = Math.abs(east);
    const h = Math.floor(abs / 60);
    const m = abs % 60;
    const value = east === 0 ? 'GMT' : `GMT${east < 0 ? '-' : '+'}${h}${m ? `:${two(m)}` : ''}`;
    return [{ type: 'timeZoneName', value }];
  },
};
