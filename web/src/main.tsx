// The console's entry: theme, notifications, session and router.
import '@mantine/core/styles.css';
import '@mantine/notifications/styles.css';
import { createTheme, localStorageColorSchemeManager, MantineProvider } from '@mantine/core';
import { Notifications } from '@mantine/notifications';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { BrowserRouter } from 'react-router';
import { App } from './app';
import { SessionProvider } from './session';

const theme = createTheme({ primaryColor: 'indigo', defaultRadius: 'md' });
// No ColorSchemeScript: it is an inline script, which the CSP forbids; the scheme is applied as React mounts.
const colorSchemeManager = localStorageColorSchemeManager({ key: 'console-color-scheme' });

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <MantineProvider theme={theme} defaultColorScheme="auto" colorSchemeManager={colorSchemeManager}>
      <Notifications position="top-right" />
      <BrowserRouter>
        <SessionProvider>
          <App />
        </SessionProvider>
      </BrowserRouter>
    </MantineProvider>
  </StrictMode>,
);
