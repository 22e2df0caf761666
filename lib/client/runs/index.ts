export * from './runs';
export * from './errors';
export * from './watch';
