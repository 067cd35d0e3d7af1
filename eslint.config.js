// Lint rules: typescript-eslint's recommended set plus the few that catch real bugs in
// async, streaming code (floating promises, unused values), and the one architectural rule
// a reviewer would miss: only src/market reads the time (the Clock, DESIGN §1).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.cache/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { project: './tsconfig.check.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/market/**'],
    rules: {
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'Only src/market reads the time: take a Clock (clock.now()) or a stopwatch() from src/market/clock.ts.' },
        { object: 'performance', property: 'now', message: 'Only src/market reads the time: use stopwatch() from src/market/clock.ts.' },
        { object: 'process', property: 'hrtime', message: 'Only src/market reads the time: use stopwatch() from src/market/clock.ts.' },
      ],
      'no-restricted-syntax': [
        'error',
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'Only src/market reads the time: new Date(clock.now()) with a Clock from src/market/clock.ts.' },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: { process: 'readonly', console: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly' },
    },
  },
);
